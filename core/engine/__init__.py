"""The coordinator and the components it drives through each session."""
