"""What a kind is: definitions loaded from TOML, parameters, rules, placeholders,
Python datasets and the formats a kind offers. Imports no other package.
"""
