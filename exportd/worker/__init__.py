"""The worker loop: claims into free slots, leases kept, outcomes recorded. It knows
the queue and the export engine by their Protocols only.
"""
