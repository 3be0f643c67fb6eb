"""The auth server's HTML: templates, the stylesheet, signed forms and cookies."""
