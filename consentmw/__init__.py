from consentmw.core.consent import Consent
from consentmw.core.errors import ConfigError, PolicyError
from consentmw.asgi import ConsentMiddleware
from consentmw.core.policy import Policy, load_policy

__all__ = ["ConfigError", "Consent", "ConsentMiddleware", "Policy", "PolicyError", "load_policy"]
