# The same install as the README's run command, in an image.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-dev \
    ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/b2bua
COPY . .
# builds pjsua2 from pjproject source through Debian's package registry (see README)
RUN scripts/setup.sh && rm -rf /root/.cache/pip
EXPOSE 5060/udp 8080/tcp
# listen on all interfaces; set B2BUA_SIP__PUBLIC_HOST to the address peers reach, and mount your own config
ENV B2BUA_SIP__LISTEN_IP=0.0.0.0 B2BUA_HTTP__LISTEN_IP=0.0.0.0
# init: creates the database on the very first start only (and refuses one deleted since; see README)
CMD ["sh", "-c", ".venv/bin/python -m b2bua init && exec .venv/bin/python -m b2bua run"]
