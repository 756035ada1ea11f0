"""A stand-in for the Hugging Face hub's file API, for tests of the downloader.

Serves ROOT/<repo id>/<file> as GET /<repo id>/resolve/<revision>/<file> for the
revisions "main" and COMMIT, with the headers the hub sends: X-Repo-Commit and
ETag (the git sha1 of small files). Weight files (*.safetensors, *.bin) are
served like the hub serves LFS files: a 302 carrying X-Repo-Commit and
X-Linked-Etag (the sha256) to /cdn/<sha256>, whose own ETag differs.
Anything else is a 404; with --token, a request without that bearer token is
a 401. Prints the port once listening (--port 0 picks a free one) and appends
"<method> <path> <authorization>" per request to --log.
"""
import argparse
import hashlib
import http.server
import os
import urllib.parse

args = None


class HubHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization", "-")
        if args.log:
            with open(args.log, "a") as log:
                log.write(f"GET {self.path} {auth}\n")
        if args.token and auth != f"Bearer {args.token}":
            return self.answer(401, b"Invalid credentials", {})
        if self.path.startswith("/cdn/"):
            return self.serve_cdn(self.path[len("/cdn/"):])
        repo, sep, rest = self.path.partition("/resolve/")
        revision, _, filename = rest.partition("/")
        revision, filename = urllib.parse.unquote(revision), urllib.parse.unquote(filename)
        path = os.path.join(args.root, repo.lstrip("/"), filename)
        if not sep or revision not in ("main", args.commit) or not os.path.isfile(path):
            return self.answer(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
        with open(path, "rb") as f:
            body = f.read()
        if filename.endswith((".safetensors", ".bin")):
            sha256 = hashlib.sha256(body).hexdigest()
            return self.answer(302, b"", {"X-Repo-Commit": args.commit, "X-Linked-Etag": f'"{sha256}"',
                                          "Location": f"/cdn/{sha256}"})
        # git's blob id, as the hub's ETag for files stored in git
        sha1 = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
        self.answer(200, body, {"X-Repo-Commit": args.commit, "ETag": f'"{sha1}"'})

    def serve_cdn(self, sha256):
        for folder, _, files in os.walk(args.root):
            for name in files:
                with open(os.path.join(folder, name), "rb") as f:
                    body = f.read()
                if hashlib.sha256(body).hexdigest() == sha256:
                    return self.answer(200, body, {"ETag": '"cdn-etag-not-the-blob-name"'})
        self.answer(404, b"", {})

    def answer(self, status, body, headers):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *unused):  # keep the test output clean
        pass


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="")
    parser.add_argument("--log", default="")
    args = parser.parse_args()
    server = http.server.HTTPServer(("127.0.0.1", args.port), HubHandler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
