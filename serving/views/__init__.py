"""HTML pages of the serving app."""
