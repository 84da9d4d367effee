"""Object storage: the client and its deadlines, what a failure means, small object
operations, the streaming upload and presigned downloads. Knows nothing of jobs.
"""
