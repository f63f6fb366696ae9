from consentmw.core.consent import Consent
from consentmw.core.errors import ConfigError, PolicyError, UnknownCategory
from consentmw.asgi import ConsentMiddleware
from consentmw.core.policy import Policy, load_policy

__all__ = ["ConfigError", "Consent", "ConsentMiddleware", "Policy", "PolicyError", "UnknownCategory", "load_policy"]
