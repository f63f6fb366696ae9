from consentmw.errors import ConfigError, PolicyError
from consentmw.policy import Policy, load_policy

__all__ = ["ConfigError", "Policy", "PolicyError", "load_policy"]
