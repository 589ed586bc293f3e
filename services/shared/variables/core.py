"""The settings every deployment has: storage, broker, chain, keys, the services' addresses,
links, timers, mail, limits, the console."""

from __future__ import annotations

from pathlib import Path

from .kinds import Variable, parse_bool, parse_duration, parse_list, parse_size

CORE: tuple[Variable, ...] = (
    Variable(
        "OFFERSEAL_DATA_DIR",
        "data_dir",
        Path,
        "Data directory: SQLite database, generated dev keys, deployment records, Anvil state, "
        "the notify sent journal (`notify-journal/`).",
    ),
    Variable(
        "OFFERSEAL_DATABASE_URL",
        "database_url",
        str,
        "SQLAlchemy URL. Default: SQLite in the data directory. "
        "PostgreSQL: `postgresql+psycopg://user@host/db`.",
    ),
    Variable(
        "OFFERSEAL_BROKER_URL",
        "broker_url",
        str,
        "kombu URL. `memory://` (default, in-process, development only) or `amqp://...`.",
    ),
    Variable(
        "OFFERSEAL_RPC_URL",
        "rpc_url",
        str,
        "Ethereum JSON-RPC endpoint. Unset: `offerseal up` starts Anvil from node_modules.",
    ),
    Variable(
        "OFFERSEAL_SIGNER_KEY",
        "signer_key",
        str,
        "Private key (0x hex) that deploys contracts and anchors roots. Required with "
        "OFFERSEAL_RPC_URL; defaults to Anvil's dev account only for the Anvil OfferSeal starts.",
    ),
    Variable(
        "OFFERSEAL_REGISTRY_ADDRESS",
        "registry_address",
        str,
        "EvidenceRegistry address. Unset: the address recorded in the database (also written "
        "to <data dir>/deployments/), "
        "deployed when missing.",
    ),
    Variable(
        "OFFERSEAL_REGISTRY_ADMIN",
        "registry_admin",
        str,
        "Address that administers a newly deployed EvidenceRegistry (grants and revokes the "
        "anchoring role): a cold key or a multisig, never the anchoring key. Required when the "
        "registry is deployed on a chain other than the Anvil OfferSeal starts (there: the "
        "signer).",
    ),
    Variable(
        "OFFERSEAL_AUTO_DEPLOY",
        "auto_deploy",
        parse_bool,
        "Deploy the registry when none is configured or its code is gone (chain reset).",
    ),
    Variable(
        "OFFERSEAL_MASTER_KEY",
        "master_key",
        str,
        "Base64 of 32 bytes: wraps each document's AES-256-GCM data key. Unset: a dev key is "
        "generated in the data directory (not for production).",
    ),
    Variable(
        "OFFERSEAL_MASTER_KEYS_PREVIOUS",
        "master_keys_previous",
        str,
        "Earlier master keys, comma-separated base64: they only unwrap documents stored before "
        "a rotation (`offerseal keys rotate` re-wraps those under OFFERSEAL_MASTER_KEY).",
    ),
    Variable(
        "OFFERSEAL_RECEIPT_KEY",
        "receipt_key",
        str,
        "Base64 of a 32-byte Ed25519 seed that signs intake receipts. Unset: generated in the "
        "data directory.",
    ),
    Variable(
        "OFFERSEAL_CERTIFICATE_KEY",
        "certificate_key",
        str,
        "Private key (PEM text, or the path of a PEM file) that signs evidence certificate PDFs. "
        "Unset (with OFFERSEAL_CERTIFICATE_CERT): a self-signed development certificate is "
        "generated once in `<data dir>/secrets/` (`certificate-key.pem`, `certificate.pem`). "
        "Set both or neither.",
    ),
    Variable(
        "OFFERSEAL_CERTIFICATE_CERT",
        "certificate_cert",
        str,
        "Certificate of that key (PEM text or file; its chain may follow it), shown by PDF "
        "readers as the certificate's signer.",
    ),
    Variable("OFFERSEAL_HOST", "host", str, "Interface the HTTP servers bind to."),
    Variable("OFFERSEAL_EVIDENCE_PORT", "evidence_port", int, "Port of the evidence service."),
    Variable("OFFERSEAL_CONTRACTS_PORT", "contracts_port", int, "Port of the contracts service."),
    Variable(
        "OFFERSEAL_CONTRACTS_SIGNER_KEY",
        "contracts_signer_key",
        str,
        "Private key the contracts service sends agreement transactions with (one writer per "
        "key, so it differs from OFFERSEAL_SIGNER_KEY). Defaults to Anvil's second dev account "
        "only for the Anvil OfferSeal starts.",
    ),
    Variable(
        "OFFERSEAL_AGREEMENTS_ADDRESS",
        "agreements_address",
        str,
        "IntentAgreements address. Unset: recorded in the database, deployed when missing.",
    ),
    Variable(
        "OFFERSEAL_EVIDENCE_URL",
        "evidence_url",
        str,
        "The evidence service's base URL, where the contracts service fetches anchored proofs. "
        "Unset: the evidence service started beside it.",
    ),
    Variable(
        "OFFERSEAL_CONTRACTS_URL",
        "contracts_url",
        str,
        "The contracts service's base URL, where the console (the web node) sends HR's actions "
        "on agreements (offer, dates, start, withdraw, cancel, breach, links) with the person's "
        "session. Unset: the contracts service started beside it.",
    ),
    Variable(
        "OFFERSEAL_API_KEY",
        "api_key",
        str,
        "An API key (legal or admin) the command line's API clients call with: `offerseal "
        "dossier`. Never printed.",
    ),
    Variable(
        "OFFERSEAL_NOTIFY_URL",
        "notify_url",
        str,
        "The notify service's base URL, where the contracts service reads the touchpoint log "
        "for an agreement's dossier (proof of notice), and the console sets the chat-alert "
        "robots (`/console/alerts`). Unset: the notify service started beside it.",
    ),
    Variable(
        "OFFERSEAL_PUBLIC_URL",
        "public_url",
        str,
        "Base URL candidates reach the contracts service at (used in signing links). Unset: "
        "its own address.",
    ),
    Variable(
        "OFFERSEAL_LINK_SECRET",
        "link_secret",
        str,
        "Base64 of 32 bytes: signs candidate links. Unset: generated in the data directory.",
    ),
    Variable(
        "OFFERSEAL_LINK_TTL",
        "link_ttl",
        parse_duration,
        "How long a candidate link stays valid after it is issued.",
    ),
    Variable(
        "OFFERSEAL_SWEEP_INTERVAL",
        "sweep_interval",
        parse_duration,
        "How often the sweeper declares due breaches and expiries and flags overdue milestones.",
    ),
    Variable(
        "OFFERSEAL_TX_POLL_INTERVAL",
        "tx_poll_interval",
        parse_duration,
        "How often the contracts service looks for its transactions in new blocks (records "
        "outcomes, finds stuck ones) while some are in flight; with none, up to once a second "
        "until this process commits a write.",
    ),
    Variable(
        "OFFERSEAL_TX_STUCK_BLOCKS",
        "tx_stuck_blocks",
        int,
        "Blocks after which a contracts transaction still not mined counts as stuck: sent "
        "again if the node lost it, else replaced (same nonce, fees +12.5%).",
    ),
    Variable(
        "OFFERSEAL_TX_STUCK_AFTER",
        "tx_stuck_after",
        parse_duration,
        "Time after which a contracts transaction still not mined counts as stuck, whatever "
        "the blocks (a chain that mines nothing, or a node that lost it).",
    ),
    Variable(
        "OFFERSEAL_DEFAULT_TIMEZONE",
        "default_timezone",
        str,
        "Time zone for dates given without one, and for candidates without one.",
    ),
    Variable("OFFERSEAL_NOTIFY_PORT", "notify_port", int, "Port of the notify service."),
    Variable(
        "OFFERSEAL_WEB_PORT",
        "web_port",
        int,
        "Port of the pages for people (the candidate's portal, the console, the verify page), "
        "one origin for every page; in `offerseal up` it also answers every `/v1/` API path "
        "(routed to the service that owns it), so the pages never call another origin.",
    ),
    Variable(
        "OFFERSEAL_NOTIFY_PUBLIC_URL",
        "notify_public_url",
        str,
        "Base URL candidates reach the notify service at (reply and unsubscribe links). Unset: "
        "its own address.",
    ),
    Variable(
        "OFFERSEAL_SMTP_URL",
        "smtp_url",
        str,
        "E-mail channel: `smtp://host:port`, `smtp+starttls://user:pass@host:587` or "
        "`smtps://...`. Unset: no e-mail.",
    ),
    Variable(
        "OFFERSEAL_WEB_PUBLIC_URL",
        "web_public_url",
        str,
        "Base URL candidates reach the pages for people at (the portal, the verify page): "
        "messages carry short links `<this>/l/<code>` to it. Keep it short (an SMS text holds "
        "70 characters, link included). Passkeys need a secure context: https, or "
        "http://localhost. Unset: http://localhost:<web port> when the host is 127.0.0.1.",
    ),
    Variable(
        "OFFERSEAL_MAIL_FROM",
        "mail_from",
        str,
        "Sender address of candidate e-mail; its display name becomes `<employer> via OfferSeal`.",
    ),
    Variable(
        "OFFERSEAL_DKIM_SELECTOR",
        "dkim_selector",
        str,
        "DKIM selector of the sending domain (the domain of OFFERSEAL_MAIL_FROM), e.g. "
        "`offerseal1`: the public key is published at `<selector>._domainkey.<domain>`. Unset: "
        "mail is not signed.",
    ),
    Variable(
        "OFFERSEAL_DKIM_PRIVATE_KEY",
        "dkim_private_key",
        str,
        "The sending domain's DKIM private key: PEM text (RSA, 2048 bits or more) or the path "
        "of a PEM file. Unset: mail is not signed.",
    ),
    Variable(
        "OFFERSEAL_MAIL_DOMAIN",
        "mail_domain",
        str,
        "Domain of our Message-IDs (`<touchpoint-id@domain>`).",
    ),
    Variable(
        "OFFERSEAL_WEBHOOK_URL",
        "webhook_url",
        str,
        "Webhook channel (SMS gateways, DingTalk, WeCom bots): JSON POSTs signed with "
        "OFFERSEAL_WEBHOOK_SECRET. Unset: no webhook.",
    ),
    Variable(
        "OFFERSEAL_WEBHOOK_SECRET",
        "webhook_secret",
        str,
        "HMAC-SHA256 key for webhook signatures. Unset: generated in the data directory.",
    ),
    Variable(
        "OFFERSEAL_NOTIFY_OUTBOX_DIR",
        "notify_outbox_dir",
        Path,
        "Development channel: e-mail is written there as .eml files instead of sent (ignored "
        "when OFFERSEAL_SMTP_URL is set). Unset: off, except that `offerseal up` uses "
        "`<data dir>/mail` when neither SMTP nor a webhook is configured.",
    ),
    Variable(
        "OFFERSEAL_CHECKIN_INTERVAL",
        "checkin_interval",
        parse_duration,
        "Progress check-in rhythm from commitment to the start date (`48h`, `30m`, `90s`).",
    ),
    Variable(
        "OFFERSEAL_QUIET_HOURS",
        "quiet_hours",
        str,
        "Default quiet hours in the candidate's time zone (`21:00-09:00`); messages wait.",
    ),
    Variable(
        "OFFERSEAL_DISPATCH_INTERVAL",
        "dispatch_interval",
        parse_duration,
        "How often the notify worker looks for due touchpoints while some are due; with none, "
        "up to once a second until this process commits a write.",
    ),
    Variable(
        "OFFERSEAL_TOUCHPOINT_MAX_ATTEMPTS",
        "touchpoint_max_attempts",
        int,
        "Attempts at one touchpoint before it is marked failed and `touchpoint.failed` is "
        "published (as for a 5xx bounce).",
    ),
    Variable(
        "OFFERSEAL_RETENTION",
        "retention",
        parse_duration,
        "Age after which operational rows are deleted (sent outbox rows, handled message ids, "
        "idempotency records, used reply tokens, retry and quiet-hour attempts); evidence is "
        "never deleted.",
    ),
    Variable(
        "OFFERSEAL_BROKER_HEARTBEAT",
        "broker_heartbeat",
        parse_duration,
        "AMQP heartbeat: a broker connection silent for twice this long is dropped and "
        "reconnected (0: off).",
    ),
    Variable(
        "OFFERSEAL_ANVIL_PORT", "anvil_port", int, "Port for the Anvil that `offerseal up` starts."
    ),
    Variable("OFFERSEAL_WEB_THREADS", "web_threads", int, "HTTP worker threads per service."),
    Variable(
        "OFFERSEAL_TRUSTED_PROXIES",
        "trusted_proxies",
        int,
        "How many reverse proxies (the gateway, a TLS terminator) stand in front of each "
        "service and append to X-Forwarded-For and X-Forwarded-Proto: the client's address "
        "for rate limits, sign-in throttling and provenance is taken from there, and https "
        "from the outermost trusted proxy makes cookies Secure and sends HSTS. 1: the gateway "
        "alone; 2: a TLS terminator in front of the gateway (deploy/gateway.conf appends its "
        "scheme to the terminator's). Never more than really stand in front (a client could "
        "forge the headers). 0 (default): those headers are ignored.",
    ),
    Variable(
        "OFFERSEAL_WORKERS",
        "workers",
        int,
        "Worker processes of `offerseal serve` (gunicorn, pre-fork; `--workers` overrides): 1 "
        "runs everything in one process; more take requests on every core while exactly one of "
        "them also runs the background (anchoring, stamping, chain and notify workers, "
        "consumers, outbox relay). `offerseal up` always runs one process.",
    ),
    Variable(
        "OFFERSEAL_BATCH_INTERVAL",
        "batch_interval",
        parse_duration,
        "Longest wait before pending documents are anchored (`1s`, `500ms`, ...).",
    ),
    Variable(
        "OFFERSEAL_BATCH_MAX",
        "batch_max",
        int,
        "Most leaves in one Merkle tree / anchor transaction.",
    ),
    Variable(
        "OFFERSEAL_CONFIRMATIONS",
        "confirmations",
        int,
        "Blocks (including the anchoring one) before a root counts as anchored.",
    ),
    Variable(
        "OFFERSEAL_RECONCILE_INTERVAL",
        "reconcile_interval",
        parse_duration,
        "How often anchored roots are checked against the chain (reset or reorg detection).",
    ),
    Variable(
        "OFFERSEAL_TSA_URLS",
        "tsa_urls",
        parse_list,
        "RFC 3161 Time-Stamp Authorities (comma-separated URLs) that stamp every anchored root: "
        "the second witness beside the chain. Unset: `offerseal up` and the demo start a local "
        "development TSA (OpenSSL, its own CA in <data dir>/dev-tsa/); `offerseal serve` stamps "
        "nothing.",
    ),
    Variable(
        "OFFERSEAL_TSA_CA_FILE",
        "tsa_ca_file",
        Path,
        "PEM file of the TSA root certificates trusted for time-stamps: replies are checked "
        "against them before they are stored, and `/v1/verify` checks bundles' stamps with "
        "them. Unset: the development TSA's CA when it runs, otherwise the root each bundle "
        "names (and the check says so).",
    ),
    Variable(
        "OFFERSEAL_OUTBOX_INTERVAL",
        "outbox_interval",
        parse_duration,
        "How often the outbox relay looks for unpublished messages while there are some; "
        "once it finds none it looks less often, up to once a second, until this process "
        "commits a write (which wakes it at once).",
    ),
    Variable(
        "OFFERSEAL_MAX_DOCUMENT_BYTES",
        "max_document_bytes",
        parse_size,
        "Largest accepted document (`25MiB`); larger uploads get 413 without being read.",
    ),
    Variable(
        "OFFERSEAL_AUTO_BREACH",
        "auto_breach",
        parse_bool,
        "Default for tenants that did not choose (`PUT /v1/policy`): the sweeper declares a "
        "candidate's breach by itself once the contract allows it (never while the "
        "candidate's recorded arrival stands).",
    ),
    Variable(
        "OFFERSEAL_BREACH_ALERT_LEAD",
        "breach_alert_lead",
        parse_duration,
        "How long before a breach becomes declarable (start plus grace, no arrival standing) "
        "HR is alerted in its chat (`agreement.breach_due`; once per breach date).",
    ),
    Variable(
        "OFFERSEAL_CANDIDATE_UPLOADS",
        "candidate_uploads",
        str,
        "Default for tenants that did not choose: `review` (a candidate's upload through "
        "their link waits for HR to confirm the milestone) or `auto` (the anchored upload "
        "confirms it on chain).",
    ),
    Variable(
        "OFFERSEAL_PUBLIC_RATE_LIMIT",
        "public_rate_limit",
        str,
        "Requests one client address may make to the endpoints that need no API key (verify, "
        "candidate links, uploads) per service, e.g. `300/minute`, `20/second;1000/hour`; "
        "over it: 429 with Retry-After.",
    ),
    Variable(
        "OFFERSEAL_RATE_LIMIT_STORAGE",
        "rate_limit_storage",
        str,
        "Where rate-limit counters live: `memory://` (default, per process) or "
        "`redis://host:6379` (shared by every replica).",
    ),
    Variable(
        "OFFERSEAL_SESSION_TTL",
        "session_ttl",
        parse_duration,
        "How long a console session lasts after signing in, however active (`8h`).",
    ),
    Variable(
        "OFFERSEAL_REPORT_RECIPIENTS",
        "report_recipients",
        str,
        "Who receives a tenant's weekly report by e-mail, per tenant "
        "(`acme=hr@acme.example ops@acme.example;globex=...`); a tenant not named here: its "
        "active `hr` and `admin` console accounts.",
    ),
    Variable(
        "OFFERSEAL_SESSION_IDLE",
        "session_idle",
        parse_duration,
        "A console session unused for this long ends (`30m`).",
    ),
    Variable(
        "OFFERSEAL_LOGIN_RATE_LIMIT",
        "login_rate_limit",
        str,
        "Failed console sign-ins allowed per account and per client address, e.g. "
        "`5/minute;20/hour`; over it: the sign-in page answers 429 with Retry-After.",
    ),
    Variable("OFFERSEAL_LOG_LEVEL", "log_level", str, "Python logging level."),
    Variable(
        "OFFERSEAL_FAILPOINT",
        "failpoint",
        str,
        "Test only: name of a point where the process kills itself with SIGKILL "
        "(e.g. `anchor.after_send`; `anchor.after_send#3` at its third pass), to prove crash "
        "recovery with real processes.",
    ),
)
