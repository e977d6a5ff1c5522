"""Scripts the app stack runs in the cluster as Kubernetes Jobs, with the app's own image."""
