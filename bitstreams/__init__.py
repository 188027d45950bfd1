"""sbnn stage package."""
