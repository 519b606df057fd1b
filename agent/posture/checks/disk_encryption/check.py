"""disk_encryption: are the system disk and the user's home encrypted at rest?

Decision: pass only when BOTH the operating-system volume and the volume that holds the user's home
(profile) are encrypted and protected. An encrypted home on a plain system volume fails, because
swap, temporary files, caches and browser data live on the system volume. An unrelated encrypted
volume (a USB disk, a data partition) never makes the check pass: only the volumes under ``/`` and
the home directory count.

Windows (no admin needed): section "bitlocker" of the batched snapshot. ``shell_protection`` holds
the Shell property System.Volume.BitLockerProtection per drive; it covers Home "device encryption"
too. The values are numbers, so a Japanese Windows gives the same answer as an English one:
1 on, 2 off, 3 encrypting, 4 decrypting, 5 suspended, 6 on and locked, 8 waiting for activation
(encrypted with a clear key, i.e. not protected), 0 or null not available. Sources: the Explorer
verbs in HKCR\\Drive\\shell (unlock-bde applies to ``:=6``; manage-bde to On/Encrypting/Suspended;
encrypt-bde to Off/OnPreProvisioned) and community scripts that switch on the same numbers. When
the snapshot ran elevated, ``wmi`` (Win32_EncryptableVolume ProtectionStatus 0 off/1 on/2 unknown,
ConversionStatus 0 decrypted/1 encrypted/2 encrypting/3 decrypting/4 encryption paused/5 decryption
paused, Microsoft Learn) is the stronger source. Suspended protection fails with its own message;
encryption in progress warns.

macOS: ``fdesetup isactive`` (no root needed): exit 0 with "true" is on, exit 1 with "false" is off,
anything else is unknown. ``fdesetup status`` is kept as evidence only.

Linux (no root needed): the mounts of ``/`` and of the home directory (longest mount-point prefix in
/proc/self/mountinfo) are mapped to block devices through sysfs and walked down: a device-mapper
device whose dm/uuid starts with ``CRYPT-`` is encrypted (except cryptsetup's verity, integrity and
LUKS2-integrity sub-devices, which encrypt nothing); any device with slaves (LVM, md RAID, ...) is
encrypted only when ALL its slaves are; a partition is what its disk is; a loop device is what the
volume holding its backing file is; a bare disk is plain (self-encrypting drives cannot be seen and
count as plain). Filesystems with an anonymous device number (btrfs, ...) are resolved from their
mount source (/dev/mapper/NAME, /dev/NAME) and, for btrfs, every member in /sys/fs/btrfs. eCryptfs
counts as an encrypted home. overlay, zfs, network and unresolvable sources are unknown, with the
reason. ``lsblk -J`` is a cross-check and the fallback when sysfs cannot answer (it cannot tell
verity from crypt, so sysfs is preferred); when both answer and disagree, the result is unknown.
Not covered: fscrypt directories and swap partitions (evidence could grow to them later).
"""

from __future__ import annotations

from agent.posture.checks.disk_encryption import linux, macos, windows
from agent.posture.context import ProbeContext
from agent.posture.dispatch import by_os
from agent.posture.model import Finding

CHECK_ID = "disk_encryption"
# Fixed files this check reads. The sysfs paths it walks depend on the devices found, so they
# cannot be listed; a garbage value there can only make a device look plain or unknown.
SOURCES: tuple[str, ...] = linux.SOURCES


def check(ctx: ProbeContext) -> Finding:
    return by_os(ctx, CHECK_ID, windows=windows.check_windows, macos=macos.check_macos,
                 linux=linux.check_linux)
