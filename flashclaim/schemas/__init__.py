"""Every request and response body of the HTTP API, one typed shape each (msgspec Structs).

From each type come the decoding and validation of a request (`decode`), the rendering of
an answer (`encode`), and its OpenAPI component (`flashclaim.web.openapi`): a bound or a
pattern is written once, here. Cross-field rules (a threshold's min_spend against its value,
a daily limit against the lifetime one) are a small step after decoding, next to the type.
"""
