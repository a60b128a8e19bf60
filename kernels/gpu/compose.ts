// Builds WGSL variants from one source with a fixed, tiny vocabulary (not a general preprocessor):
//   //#if FLAG   //#if !FLAG   //#else   //#endif     keep or drop lines by boolean flags (nesting allowed)
//   //#include NAME                                   paste a named snippet (e.g. the shared dequant functions)
// Types vary through WGSL `alias` lines the caller prepends; tuning knobs stay `override` constants.
import { KernelError } from '../../core/errors.js';

export type Flags = Record<string, boolean>;

export function composeWgsl(
  source: string,
  flags: Flags = {},
  snippets: Record<string, string> = {},
  name = 'wgsl',
): string {
  const out: string[] = [];
  const stack: { keep: boolean; parentKeep: boolean; sawElse: boolean; line: number }[] = [];
  const lines = source.split('\n');
  const keeping = () => (stack.length ? stack[stack.length - 1].keep : true);
  lines.forEach((line, i) => {
    const directive = /^\s*\/\/#(if|else|endif|include)\b\s*(!?)(\w*)\s*$/.exec(line);
    if (!directive) {
      if (keeping()) out.push(line);
      return;
    }
    const [, word, negate, arg] = directive;
    const where = `${name}:${i + 1}`;
    if (word === 'if') {
      if (!(arg in flags))
        throw new KernelError(
          'DAWN_ERR_KERNEL_COMPOSE',
          `${where}: flag ${arg} is not set (known: ${Object.keys(flags).join(', ') || 'none'})`,
        );
      const cond = negate ? !flags[arg] : flags[arg];
      const parentKeep = keeping();
      stack.push({ keep: parentKeep && cond, parentKeep, sawElse: false, line: i + 1 });
    } else if (word === 'else') {
      const top = stack[stack.length - 1];
      if (!top || top.sawElse) throw new KernelError('DAWN_ERR_KERNEL_COMPOSE', `${where}: //#else without //#if`);
      top.keep = top.parentKeep && !top.keep;
      top.sawElse = true;
    } else if (word === 'endif') {
      if (!stack.pop()) throw new KernelError('DAWN_ERR_KERNEL_COMPOSE', `${where}: //#endif without //#if`);
    } else if (keeping()) {
      const snippet = snippets[arg];
      if (snippet === undefined) throw new KernelError('DAWN_ERR_KERNEL_COMPOSE', `${where}: unknown snippet ${arg}`);
      out.push(composeWgsl(snippet, flags, snippets, arg));
    }
  });
  if (stack.length) {
    throw new KernelError('DAWN_ERR_KERNEL_COMPOSE', `${name}:${stack[stack.length - 1].line}: //#if without //#endif`);
  }
  return out.join('\n');
}
