// The Kubernetes manifests in deploy/k8s, validated against the Kubernetes (and Prometheus Operator) OpenAPI
// schemas through kubernetes-models, then checked for what this server needs: one GPU per pod, probes on /health,
// a grace period that covers the server's drain, the HPA on the waiting-queue metric.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const dir = new URL('../../deploy/k8s/', import.meta.url).pathname;
const kinds: Record<string, (o: object) => { validate(): void }> = {
  Deployment: (o) => new Deployment(o as never),
  Service: (o) => new Service(o as never),
  HorizontalPodAutoscaler: (o) => new HorizontalPodAutoscaler(o as never),
  PodDisruptionBudget: (o) => new PodDisruptionBudget(o as never),
  ServiceMonitor: (o) => new ServiceMonitor(o as never),
};

interface Manifest {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
const manifests: Manifest[] = kustomization.resources.flatMap((f) =>
  parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${f}: ${d.errors[0].message}`);
    return d.toJS() as Manifest;
  }),
);
const byKind = (kind: string) => {
  const m = manifests.find((x) => x.kind === kind);
  if (!m) throw new Error(`deploy/k8s: no ${kind} among the kustomization's resources`);
  return m as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
};

describe('deploy/k8s', () => {
  it('lists every manifest file in the kustomization', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    const outside = files.filter((f) => !kustomization.resources.includes(f));
    expect(outside).toEqual(['prometheus-adapter-rules.yaml']); // the adapter's Helm values, not a resource
  });

  it('every resource validates against its Kubernetes schema', () => {
    for (const m of manifests) {
      const make = kinds[m.kind];
      expect(make, `no schema for kind ${m.kind}`).toBeDefined();
      expect(() => make(m).validate(), `${m.kind}/${m.metadata.name}`).not.toThrow();
    }
  });

  it('the schema check catches a broken manifest', () => {
    const d = structuredClone(byKind('Deployment'));
    d.spec.template.spec.containers[0].ports[0].containerPort = 'eight thousand';
    expect(() => new Deployment(d).validate()).toThrow();
  });

  it('one GPU per pod, probes on /health, grace period covers the drain, non-root', () => {
    const spec = byKind('Deployment').spec.template.spec;
    const c = spec.containers[0];
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'])
      expect(c[probe].httpGet.path).toBe('/health');
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(30);
    expect(spec.securityContext.runAsNonRoot).toBe(true);
    expect(c.env.find((e: { name: string }) => e.name === 'NVIDIA_DRIVER_CAPABILITIES').value).toMatch(/graphics/);
    expect(c.args.slice(0, 2)).toEqual(['serve', '/models/default']);
  });

  it('the HPA scales the Deployment on the waiting queue the adapter rule exposes', () => {
    const hpa = byKind('HorizontalPodAutoscaler').spec;
    expect(hpa.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'dawnllm' });
    const metric = hpa.metrics[0].pods.metric.name;
    const adapter = parse(readFileSync(join(dir, 'prometheus-adapter-rules.yaml'), 'utf8'));
    const rule = adapter.rules.custom[0];
    expect(rule.seriesQuery).toMatch(/^vllm:num_requests_waiting\{/);
    expect(rule.name.as).toBe(metric);
  });

  it('the ServiceMonitor scrapes /metrics on the Service port', () => {
    const port = byKind('Service').spec.ports[0].name;
    expect(byKind('ServiceMonitor').spec.endpoints[0]).toMatchObject({ port, path: '/metrics' });
  });
});
