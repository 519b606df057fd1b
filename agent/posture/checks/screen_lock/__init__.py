"""screen_lock: the screen locks itself after a short idle time (GNOME/KDE, macOS, Windows screen
saver policy).
"""
