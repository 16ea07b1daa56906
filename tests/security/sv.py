#!/usr/bin/env python3
"""Run a SIPVicious tool (svwar, svcrack) with its socket bound to one
source address: the packaged tools ignore their own -b option.

  sv.py SOURCE_IP TOOL ARGS...   (TOOL: the path of svwar or svcrack)
"""

import importlib
import os
import socket
import sys

src = sys.argv[1]
tool = os.path.realpath(sys.argv[2])
_bind = socket.socket.bind


def bind(sock, addr):
    return _bind(sock, (src, addr[1]))


socket.socket.bind = bind

# the package sits beside the tool's script (Debian: /usr/share/sipvicious)
sys.path.insert(0, os.path.dirname(tool))
name = os.path.basename(tool).replace("sipvicious_", "")
mod = importlib.import_module("sipvicious." + name)
sys.argv = [name] + sys.argv[3:]
sys.exit(mod.main())
