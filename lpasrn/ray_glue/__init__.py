"""The Ray layer of lpasrn: Ray Train sessions and launchers, and connecting to a cluster. Nothing below
`lpasrn.models`, `lpasrn.losses`, `lpasrn.data` or `lpasrn.training` imports Ray; only this package does."""
