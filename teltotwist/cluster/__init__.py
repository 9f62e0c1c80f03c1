"""The cluster: gateway instances, or one gateway's worker processes, acting
as one (command routing, duplicate logins, the fleet's tracker list)."""
