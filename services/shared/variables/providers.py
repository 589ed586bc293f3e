"""The settings of the providers reached in China: SMS through Aliyun or Tencent Cloud, the
chat robots' hosts, Tencent Cloud BTOE deposits (each off until set)."""

from __future__ import annotations

from .kinds import Variable, parse_duration, parse_list

PROVIDERS: tuple[Variable, ...] = (
    Variable(
        "OFFERSEAL_BTOE_SECRET_ID",
        "btoe_secret_id",
        str,
        "Tencent Cloud API SecretId for the judicial-chain witness (BTOE): with "
        "OFFERSEAL_BTOE_SECRET_KEY, every anchored root's digest is deposited with Tencent Cloud "
        "BTOE (CreateHashDepositNoCert) and the answer stored in the proof bundles. Unset: off "
        "(the default). One account for every tenant.",
    ),
    Variable(
        "OFFERSEAL_BTOE_SECRET_KEY",
        "btoe_secret_key",
        str,
        "Tencent Cloud API SecretKey for BTOE (a secret: never logged or returned).",
    ),
    Variable(
        "OFFERSEAL_BTOE_REGION",
        "btoe_region",
        str,
        "Tencent Cloud region of the BTOE calls.",
    ),
    Variable(
        "OFFERSEAL_BTOE_ENDPOINT",
        "btoe_endpoint",
        str,
        "BTOE API endpoint URL (https://btoe.tencentcloudapi.com; tests give a local server).",
    ),
    Variable(
        "OFFERSEAL_BTOE_HASH",
        "btoe_hash",
        str,
        "Digest of the root deposited with BTOE: `sm3` (HashType 0, the default) or `sha256`.",
    ),
    Variable(
        "OFFERSEAL_SMS_PROVIDER",
        "sms_provider",
        str,
        "SMS channel through a provider's official SDK: `aliyun` (Dysmsapi) or `tencent` "
        "(Tencent Cloud SMS). Unset: no SMS channel (the webhook may still feed a gateway).",
    ),
    Variable(
        "OFFERSEAL_SMS_ACCESS_KEY_ID",
        "sms_access_key_id",
        str,
        "The SMS provider's key id: Aliyun AccessKey ID or Tencent SecretId.",
    ),
    Variable(
        "OFFERSEAL_SMS_ACCESS_KEY_SECRET",
        "sms_access_key_secret",
        str,
        "The SMS provider's key secret: Aliyun AccessKey Secret or Tencent SecretKey. Never "
        "logged.",
    ),
    Variable(
        "OFFERSEAL_SMS_ENDPOINT",
        "sms_endpoint",
        str,
        "The provider's API host (`dysmsapi.aliyuncs.com`, `sms.tencentcloudapi.com`, the "
        "defaults); `http://host:port` for a local stand-in.",
    ),
    Variable(
        "OFFERSEAL_SMS_SDK_APP_ID",
        "sms_sdk_app_id",
        str,
        "Tencent only: the SMS application's SdkAppId (`1400006666`).",
    ),
    Variable(
        "OFFERSEAL_SMS_REGION",
        "sms_region",
        str,
        "Tencent only: the API region (`ap-guangzhou`).",
    ),
    Variable(
        "OFFERSEAL_SMS_SIGN_NAME",
        "sms_sign_name",
        str,
        "The approved sign name used when a tenant set none (`PUT /v1/sms`).",
    ),
    Variable(
        "OFFERSEAL_SMS_TEMPLATES",
        "sms_templates",
        str,
        "Approved template ids per message kind, used when a tenant set none: "
        "`code=SMS_1,checkin=SMS_2,...` (kinds: invitation, checkin, milestone_request, "
        "amendment, weekly_update, welcome_package, closing, code).",
    ),
    Variable(
        "OFFERSEAL_SMS_REPORT_INTERVAL",
        "sms_report_interval",
        parse_duration,
        "How often notify pulls SMS delivery reports from the provider.",
    ),
    Variable(
        "OFFERSEAL_CHAT_ROBOT_HOSTS",
        "chat_robot_hosts",
        parse_list,
        "Extra hosts (`host:port`) a tenant's chat-robot webhook may point to, besides "
        "DingTalk's, WeCom's and Feishu's own (`PUT /v1/alerts`); for local stand-ins only.",
    ),
    Variable(
        "OFFERSEAL_SMS_ENDPOINT_HOSTS",
        "sms_endpoint_hosts",
        parse_list,
        "Extra endpoints (`http://host:port`) a tenant's own SMS account may name, besides "
        "Aliyun's and Tencent Cloud's own API hosts (`PUT /v1/sms`); for local stand-ins only.",
    ),
)
