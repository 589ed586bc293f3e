"""The SMS providers' local stand-ins (Aliyun, Tencent Cloud), which check each request's
signature as the providers document it: one implementation, kept with the demo that uses it
too (`offerseal.demo.sms_standin`)."""

from offerseal.demo.sms_standin import Received, Stub, acs3_expected, serve, tc3_expected

__all__ = ["Received", "Stub", "acs3_expected", "serve", "tc3_expected"]
