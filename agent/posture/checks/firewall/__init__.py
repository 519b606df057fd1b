"""firewall: Windows Firewall profiles and third-party products, the macOS application firewall,
nftables/ufw/firewalld.
"""
