"""Integrations with other tools, each imported only by the code that uses it
(``nbtracker.integrations.ray``: sweep agents as Ray tasks and a Ray Tune callback)."""
