"""Validated image import: files, zips, server folders (ImageFolder) and label CSVs become Items.

Every file is decoded with Pillow and checked before anything is stored: byte limit, empty files,
a format allow-list decided by the decoded content (never the extension), a pixel limit checked
from the header before decoding (decompression bombs), and a full decode (truncated files fail).
A rejected file is reported by name and reason and changes nothing; a bad file never stops a batch,
and an import job always ends, succeeded or failed with its reason.

Decisions (documented for users in the README):
- The original bytes are stored untouched (sha256 is of those bytes). width/height are the
  EXIF-*oriented* size and the thumbnail is oriented, so what people see matches what training
  reads (training opens originals with ImageOps.exif_transpose too, through imaging.pixels).
- Animated GIFs / multi-page TIFFs: the first frame is the image.
- CMYK, 16-bit and palette/alpha images are converted to RGB as imaging.pixels says (alpha over white, or
  over black for light content; 16-bit stretched) for the thumbnail and perceptual hash, as the model sees
  them; the original keeps its mode.
- The split follows the perceptual hash (an image takes the split of a stored image with the same phash, else one
  derived from the phash: holdout with probability project.holdout_fraction), so a picture and its re-saved copies
  never straddle train and holdout; cold-start priority is derived from the sha256. Re-importing the same bytes
  always yields the same split and order.
- Operating-system litter (`__MACOSX/`, `.DS_Store`, `._*`, `Thumbs.db`) is skipped silently.
- With labels from folders every folder of a path is a class level, but for the folder dropped on the page and a zip's
  top folder named as the zip (`folder_classes` states the rule); the job's result says which folder became which
  class.

- A zip is checked as a whole before anything in it is inflated: entries that share compressed bytes
  (a zip bomb), more than LABELLOOP_MAX_ARCHIVE_ENTRIES entries or a declared total over
  LABELLOOP_MAX_ARCHIVE_BYTES refuse the whole archive, with the reason under its name.
- A label that is not a class path ("a//b", an empty folder name) is refused for that file or CSV row,
  by name or row number; the file is still imported, unlabeled, and no class is half created.
- Every rejection is counted by kind in job.result["rejected_by_reason"]; job.errors keeps the first
  names of each kind, each with its reason and kind (the import page lists them by name beside the kind).
- The folder report counts the files imported from each folder beside the files it held ("3 of 4").

- A bare class name in a labels CSV ("cat") names the root class of that name, else the one class of that name at
  any level, else a new root class; a name several classes carry is refused naming them (`class_names`).
- Of two copies of one image, the first read keeps its label; a copy whose folder gave another class says so
  (`duplicates`).

Modules: `validation` (pure checks of one file's bytes), `items` (storing items, all or nothing), `archives` (whole-zip
checks), `sources` (zips, folders, uploads, CSVs, class paths), `folder_classes` (which folders are classes, and the
report of it), `collect` (a job's files and CSV), `class_names` (a CSV's bare class names), `new_classes` (the classes
an import made, with typo hints), `duplicates` (copies whose labels differ), `batches` (a run's state: reading,
storing and labeling batches), `run` (the job: decoder threads, progress, failure), `submit` (staging browser uploads,
creating and queueing jobs).
"""

from labeling.services.imports.folder_classes import wrapping_folders
from labeling.services.imports.items import item_create_from_bytes
from labeling.services.imports.run import decoder_threads, import_failure_reason, import_job_fail, import_run
from labeling.services.imports.sources import (
    Entry,
    folder_entries,
    is_junk,
    label_csv_parse,
    zip_entries,
    zip_entry_unsafe,
)
from labeling.services.imports.submit import (
    import_folder_allowed,
    import_job_create,
    import_job_enqueue,
    import_job_from_staging,
    staged_uploads_add,
    staging_dir_create,
    staging_dir_get,
    staging_dirs_sweep,
    upload_names_check,
)
from labeling.services.imports.validation import (
    ALLOWED_FORMATS,
    ImportRejected,
    Inspected,
    Limits,
    image_inspect,
    image_open_checked,
    perceptual_hash,
)

__all__ = [
    "ALLOWED_FORMATS",
    "Entry",
    "ImportRejected",
    "Inspected",
    "Limits",
    "decoder_threads",
    "folder_entries",
    "image_inspect",
    "image_open_checked",
    "import_failure_reason",
    "import_folder_allowed",
    "import_job_create",
    "import_job_enqueue",
    "import_job_fail",
    "import_job_from_staging",
    "import_run",
    "is_junk",
    "item_create_from_bytes",
    "label_csv_parse",
    "perceptual_hash",
    "staged_uploads_add",
    "staging_dir_create",
    "staging_dir_get",
    "staging_dirs_sweep",
    "upload_names_check",
    "wrapping_folders",
    "zip_entries",
    "zip_entry_unsafe",
]
