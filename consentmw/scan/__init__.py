"""``consentmw scan``: audits a site in Chromium, before consent, after refusal and after acceptance.

Needs the ``scan`` extra (Playwright, tqdm, publicsuffixlist): ``pip install 'CHECKOUT[scan]'`` from a
source checkout, or ``pip install playwright tqdm publicsuffixlist`` beside an installed consentmw."""
