"""disk_encryption: BitLocker / device encryption, FileVault, LUKS under the root and home file
systems.
"""
