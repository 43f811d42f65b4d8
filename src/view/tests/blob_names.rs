//! Which store paths are blobs (the hub layout rule as the view applies it).

use super::*;

#[test]
fn is_blob_path_cases() {
    let yes = |p: &str| is_blob_path(&StorePath::parse(p).unwrap());
    assert!(yes(&format!("{REPO}/blobs/{E40}")));
    assert!(yes(&format!("{REPO}/blobs/{H64}")));
    assert!(yes(&format!("blobs/ab/{X64}")));
    assert!(
        !yes(&format!("datasets--a--b/blobs/{}", E40.to_uppercase())),
        "lower-case only"
    );
    // Not a hash name.
    assert!(!yes(&format!("{REPO}/blobs/{E40}.incomplete")));
    assert!(!yes(&format!("{REPO}/blobs/{H64}.abcd1234.incomplete")));
    assert!(!yes(&format!("{REPO}/blobs/{}", &E40[..39])));
    assert!(!yes(&format!("{REPO}/blobs/{}", &H64[..63])));
    assert!(!yes(&format!("{REPO}/blobs/{E40}0")));
    assert!(!yes(&format!("{REPO}/blobs/{}", "g".repeat(40))));
    assert!(!yes(&format!("{REPO}/blobs/tmp_{}", &E40[..36])));
    assert!(!yes(&format!("blobs/ab/{X64}.refs")));
    assert!(!yes(&format!("blobs/ab/{X64}.lock")));
    assert!(!yes("blobs/.huggingface-shared-blobs"));
    // Not below a `blobs` directory.
    assert!(!yes(&format!("{REPO}/snapshots/{COMMIT}/{E40}")));
    assert!(!yes(&format!("{REPO}/refs/{E40}")));
    assert!(!yes(E40));
    assert!(!yes(&format!("blobsx/{E40}")));
    assert!(!is_blob_path(&StorePath::root()));
}
