from billing.documents import mask_document, validate_document  # noqa: F401  (temporary)
