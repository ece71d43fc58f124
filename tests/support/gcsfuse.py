"""What Cloud Storage FUSE asks Cloud Storage for when Cloud Run mounts a bucket volume with
`only-dir`, as its released versions do: the permission checks those calls make.

Read in the gcsfuse source (github.com/GoogleCloudPlatform/gcsfuse) at the tags v2.9.0, v3.0.0,
v3.6.0, v3.10.0 and v3.11.2 (the newest release, 2026-07-24). Which release Cloud Run runs is not
published, so a grant must admit every line:

- the mount asks for the bucket's storage layout (gRPC StorageControl.GetStorageLayout, name
  projects/_/buckets/B/storageLayout) with Prefix "" whatever only-dir is, before the only-dir
  prefix applies (internal/storage/storage_handle.go getStorageLayout, called from BucketHandle),
  and fails the mount on a refusal ("storageLayout call failed"). Commit 5e12dbe6a (2026-08-04)
  sends only-dir instead; no release tag contains it. Its permission, storage.objects.list on the
  bucket, is what the issue's audit read in the Storage Control API reference;
- v2.9.0 to v3.5.x then list once, maxResults=1, with the only-dir prefix
  (internal/gcsx/bucket_manager.go SetUpBucket); v3.6.0 to v3.9.x skip it by default; v3.10.0 and
  newer dropped it, and prefetch the folder's listing (prefix only-dir/, delimiter /) at the
  first lookup;
- a file is looked up with two object GETs (NAME and NAME/, internal/fs/inode/dir.go
  LookUpChild) and read with a media GET of NAME.
"""

from __future__ import annotations

from gcloud_stub.permissions import Request, bucket_request, object_request

RELEASES = ("v2.9.0-v3.5", "v3.6-v3.9", "v3.10-v3.11.2")


def mount_requests(bucket: str, only_dir: str, release: str) -> list[Request]:
    """The permission checks of mounting gs://BUCKET with only-dir=ONLY_DIR."""
    folder = only_dir.rstrip("/") + "/"
    requests = [bucket_request("storage.objects.list", bucket, list_prefix="")]  # GetStorageLayout, Prefix ""
    if release == "v2.9.0-v3.5":
        requests.append(bucket_request("storage.objects.list", bucket, list_prefix=folder))
    if release == "v3.10-v3.11.2":
        requests.append(bucket_request("storage.objects.list", bucket, list_prefix=folder))  # the prefetch
    return requests


def read_requests(bucket: str, only_dir: str, relative: str) -> list[Request]:
    """The permission checks of opening and reading ONLY_DIR/RELATIVE through the mount."""
    name = only_dir.rstrip("/") + "/" + relative
    return [object_request("storage.objects.get", bucket, name), object_request("storage.objects.get", bucket,
                                                                                name + "/")]
