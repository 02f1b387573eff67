"""The dashboard: server-rendered pages whose figures come from the public JSON API."""
