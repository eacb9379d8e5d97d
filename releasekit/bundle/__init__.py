"""Air-gapped bundles: plan a closure per target, fetch it once, sign, verify and import it."""
