"""Restore points: consistent, verifiable backups of the source tables, and point-in-time restores.

* :mod:`cdc.backup.format`: the on-disk format (chunks, manifest, seal) and its writer.
* :mod:`cdc.backup.keys`: the key file and the keys derived from it.
* :mod:`cdc.backup.catalog`: listing, verifying, deleting and pruning backups; the point-in-time
  window the change topics give each backup.
* :mod:`cdc.backup.create`: taking a backup through a source connector's snapshot.
* :mod:`cdc.backup.restore`: bulk-loading a backup into a target and replaying the change topics.
* :mod:`cdc.backup.cli`: ``cdc backup create|list|verify|delete|prune`` and ``cdc restore``.

Importing this package imports no database driver and no Kafka client.
"""
