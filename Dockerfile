# heurist in a container: Node 20, the CPU binaries that ship in the npm packages.
#   docker build -t heurist .
#   docker run -d --name heurist-mine --restart unless-stopped \
#     -v heurist-data:/data -e HEURIST_PASSWORD_FILE=/run/secrets/heurist-password \
#     -v /path/to/password:/run/secrets/heurist-password:ro -p 4021:4021 heurist mine
# GPUs (NVIDIA): install the NVIDIA Container Toolkit on the host and add `--gpus all`; see
# docs/operating.md for the CUDA libraries each engine needs (ORT_CUDA=cuda12 below fetches
# onnxruntime's CUDA provider at build time, from api.nuget.org).

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# building needs only the compilers (tsc, solc-js): no install scripts here
RUN npm install --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY bin ./bin
COPY scripts ./scripts
COPY src ./src
RUN npm run build && mkdir /pkg && npm pack --ignore-scripts --pack-destination /pkg

FROM node:20-bookworm-slim
ARG ORT_CUDA=
COPY --from=build /pkg/ /pkg/
# the same install an operator runs: the packed tarball, from the npm registry alone
RUN ONNXRUNTIME_NODE_INSTALL=${ORT_CUDA} npm install -g --no-audit --no-fund /pkg/heurist-*.tgz \
 && npm cache clean --force && rm -rf /pkg
ENV HEURIST_HOME=/data HEURIST_LOG_FORMAT=json
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
WORKDIR /data
# libp2p (p2p.listen) and the gateway (gateway.port; set gateway.host = "0.0.0.0" to publish it)
EXPOSE 4021 8080
# SIGTERM drains running jobs and redeems vouchers (mine.drainGraceMs): `docker stop -t 90`
STOPSIGNAL SIGTERM
ENTRYPOINT ["heurist"]
CMD ["mine"]
