# Asks an application server for a page through its own socket, as the
# web server would: uWSGI with the variables nginx's uwsgi_params pass,
# gunicorn over HTTP with the headers of nginx's proxy_params. It prints
# the answer as ask-site.sh does. It retries while the server starts, and
# stops at the first good answer, when the server has exited, when the
# same bad answer came twice (a failure that will not change), or at the
# deadline.
# Arguments: protocol (uwsgi or http) socket pid-file host port https path
# revision-header revision mode status seconds; status "any" takes any
# answer but a server error.
import os, socket, struct, sys, time
protocol, sock, pidfile, host, port, https, target, header, revision, mode, want, seconds = sys.argv[1:13]
deadline = time.monotonic() + float(seconds)
path, _, query = target.partition("?")
name = host if port in ("80", "443") else host + ":" + port
env = {"QUERY_STRING": query, "REQUEST_METHOD": "GET", "CONTENT_TYPE": "", "CONTENT_LENGTH": "",
       "REQUEST_URI": target, "PATH_INFO": path, "DOCUMENT_ROOT": "/var/www/html", "SERVER_PROTOCOL": "HTTP/1.1",
       "REQUEST_SCHEME": "https" if https == "1" else "http", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "0",
       "SERVER_PORT": port, "SERVER_NAME": host, "HTTP_HOST": name, "HTTP_USER_AGENT": "djship health check"}
if https == "1":
    env["HTTPS"] = "on"
def pack(s):
    b = s.encode()
    return struct.pack("<H", len(b)) + b
if protocol == "uwsgi":
    body = b"".join(pack(k) + pack(v) for k, v in env.items())
    packet = struct.pack("<BHB", 0, len(body), 0) + body
else:
    packet = ("GET %s HTTP/1.0\r\nHost: %s\r\nX-Real-IP: 127.0.0.1\r\nX-Forwarded-For: 127.0.0.1\r\n"
              "X-Forwarded-Proto: %s\r\nUser-Agent: djship health check\r\nConnection: close\r\n\r\n"
              % (target, name, env["REQUEST_SCHEME"])).encode("latin-1")
def alive():
    try:
        with open(pidfile) as f:
            os.kill(int(f.read().strip()), 0)
        return True
    except (OSError, ValueError):
        return False
def ask():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(max(1.0, deadline - time.monotonic()))
    try:
        s.connect(sock)
        s.sendall(packet)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data:
        raise OSError("the instance closed the connection without an answer")
    head, _, content = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split()[1] if len(lines[0].split()) > 1 else "?"
    value = ""
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == header.lower():
            value = v.strip()
            break
    return status, value, content
def good(status, value, content):
    if want == "any":
        return status.isdigit() and int(status) < 500
    if status != want:
        return False
    if not revision or mode == "none":
        return True
    if mode == "header":
        return value == revision
    return value == revision or revision.encode() in content
def show(status, value, content):
    print("good=" + ("yes" if good(status, value, content) else "no"))
    print("status=" + status)
    print("header=" + value.replace("\n", " "))
    print("body=" + ("yes" if revision and revision.encode() in content else "no"))
    print("excerpt=" + content[:400].decode("utf-8", "replace").replace("\n", " ").replace("\r", " "))
started = time.monotonic()
last = None
while True:
    try:
        answer = ask()
    except OSError as e:
        if time.monotonic() >= deadline or (time.monotonic() - started > 1 and not alive()):
            why = "the instance exited" if not alive() else str(e)
            print("curl=" + why)
            sys.exit(0)
        time.sleep(0.1)
        continue
    if good(*answer) or answer == last or time.monotonic() >= deadline:
        show(*answer)
        sys.exit(0)
    last = answer
    time.sleep(0.3)
