"""What the notify service talks to besides its own tables: the delivery channels (an SMTP
server, a webhook receiver, a folder of .eml files) and the sent journal (a local file)."""
