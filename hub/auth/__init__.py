"""Users, roles, API tokens and the policies that decide who may do what."""
