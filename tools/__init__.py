"""Developer tools that keep the code base in shape (run from the repository root)."""
