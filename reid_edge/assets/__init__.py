"""Models shipped inside the package (see NOTICE.md here): found with importlib.resources, never downloaded."""
