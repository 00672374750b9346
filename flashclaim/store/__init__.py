"""Everything in Redis: the connection and server checks, the Lua scripts, campaign
storage, and the embedded server of the default set-up."""
