"""The admin console: server-rendered pages under /console for operators and
organization admins."""
