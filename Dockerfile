# dawnllm container image. Two stages: `build` compiles TypeScript with the dev dependencies; `runtime` carries only
# production dependencies, the compiled dist/ and the WGSL shaders, and runs as a non-root user.
#   docker build -t dawnllm .                          GPU image (NVIDIA Vulkan driver from the host)
#   docker build -t dawnllm:cpu --build-arg VARIANT=cpu .   CPU image (Mesa lavapipe) for GPU-less testing
# Run (GPU): docker run --gpus all -e NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics -p 8000:8000 \
#            -v /path/to/checkpoint:/models/default:ro dawnllm      (docs/DEPLOY.md)
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && mkdir -p assets/default-model

FROM ${NODE_IMAGE} AS runtime
ARG VARIANT=gpu
# The NVIDIA container toolkit mounts the driver's Vulkan ICD only when `graphics` is among the capabilities.
ENV NODE_ENV=production \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    XDG_RUNTIME_DIR=/tmp
WORKDIR /app
COPY scripts/image-install.sh scripts/install-lavapipe.sh scripts/
RUN IMAGE_INSTALL_CLEAN=1 bash scripts/image-install.sh "${VARIANT}"
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/assets ./assets
COPY bin ./bin
# The bundled default model, unless a checkpoint is mounted over /models/default.
RUN mkdir -p /models && ln -s /app/assets/default-model /models/default \
    && ln -s /app/bin/dawnllm.js /usr/local/bin/dawnllm \
    && useradd --system --uid 10001 --create-home --home-dir /home/dawnllm dawnllm
USER 10001
EXPOSE 8000
# /health is 503 while the model loads: the start period covers loading a large checkpoint.
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:8000/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["dawnllm"]
CMD ["serve", "/models/default", "--host", "0.0.0.0", "--port", "8000"]
