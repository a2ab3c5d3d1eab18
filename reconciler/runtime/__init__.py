"""The long-running side: the HTTP server (webhooks, metrics, status) and, in time, the
scheduler that reconciles every target on its cadence."""
