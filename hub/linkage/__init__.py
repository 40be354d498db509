"""Record linkage on keyed tokens: person ids, and quality against a known truth."""
