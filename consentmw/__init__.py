from consentmw.consent import Consent
from consentmw.errors import ConfigError, PolicyError
from consentmw.middleware import ConsentMiddleware
from consentmw.policy import Policy, load_policy

__all__ = ["ConfigError", "Consent", "ConsentMiddleware", "Policy", "PolicyError", "load_policy"]
