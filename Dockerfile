# One image for the OfferSeal services (and, for local deployments, Anvil from npm).
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY pyproject.toml README.md ./
COPY services ./services
COPY verifier ./verifier
COPY contracts ./contracts
COPY scripts ./scripts
RUN pip install --no-cache-dir -e .

ENV OFFERSEAL_HOST=0.0.0.0 \
    OFFERSEAL_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8101
CMD ["offerseal", "serve", "evidence"]
