"""The framework-neutral core: policy, consent cookie, tracker catalog, HTML rewriter, consent API, pages and the consent log."""
