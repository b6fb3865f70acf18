"""The asyncio layer: listeners, client and backend connections, the route executor."""
