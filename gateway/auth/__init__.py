"""Who is calling: clients, their keys and tokens, their scopes and facilities."""
