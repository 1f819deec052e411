"""The search spaces shipped with dfsweep, installed as package data (dfsweep.search_spaces)."""
