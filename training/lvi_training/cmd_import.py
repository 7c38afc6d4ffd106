"""``lvi import nnunet|monai SOURCE --out COHORT``: a cohort.csv over an nnU-Net dataset or a MONAI datalist."""

from LVIPredictorLib.vocabulary.sequences import SEQUENCES

from . import importers
from .commands import help_of
from .progress import print_problems


def register(subparsers):
    p = subparsers.add_parser(
        "import", help=help_of("import"),
        description="Build a cohort folder's cohort.csv from data in the field's formats, without copying images: "
                    "the CSV names the dataset's own files by paths relative to it. All problems (missing files, "
                    "cases without an LVI label, ambiguous channels) are reported together and nothing is "
                    "written while there is one. Then run `lvi validate-cohort COHORT`.")
    kinds = p.add_subparsers(dest="kind", metavar="FORMAT", required=True)

    nnunet = kinds.add_parser(
        "nnunet", help="imagesTr/CASE_XXXX.nii.gz + labelsTr/CASE.nii.gz + dataset.json, and a labels CSV",
        description="An nnU-Net-style dataset: imagesTr/CASE_XXXX<file_ending> (one file per channel), "
                    "labelsTr/CASE<file_ending> (the VOI of every channel: nnU-Net puts them on one grid), "
                    "dataset.json (channel_names or v1 modality, file_ending). Channel names decide the series "
                    "unless --channel is given: a name containing t2 is FS-T2WI; one containing dce, t1, dyn, post "
                    "or contrast is DCE.")
    nnunet.add_argument("dataset", help="the dataset folder (holding dataset.json, imagesTr/, labelsTr/)")
    nnunet.add_argument("--labels", required=True,
                        help="CSV with columns case_id, lvi (0/1) and optionally patient_id (default: the case id)")
    _common(nnunet)

    monai = kinds.add_parser(
        "monai", help="a MONAI-style datalist JSON ({\"training\": [{...}, ...]})",
        description="A MONAI-style datalist: sections of entries with t2_image/t2_label and/or dce_image/dce_label "
                    "(t2_mask/dce_mask accepted), or image/label for one series (--image-sequence), or an image "
                    "list of channel files (--channel); lvi (0/1) per entry or from --labels; optional case_id "
                    "(else id, else the image file name) and patient_id (default: the case id). Paths relative "
                    "to --base-dir (default: the JSON's folder), as MONAI reads them.")
    monai.add_argument("datalist", help="the datalist JSON file")
    monai.add_argument("--section", action="append", dest="sections",
                       help="datalist section to read (repeatable; default: training)")
    monai.add_argument("--base-dir", help="folder the datalist's paths are relative to (default: the JSON's folder)")
    monai.add_argument("--image-sequence", choices=SEQUENCES, help="which series a single \"image\" is")
    monai.add_argument("--labels", help="CSV with case_id, lvi and optionally patient_id (overrides entries' lvi)")
    _common(monai)
    p.set_defaults(func=run)


def _common(p):
    p.add_argument("--out", required=True, help="cohort folder to write cohort.csv into (created if missing)")
    p.add_argument("--channel", action="append", default=[], metavar="SERIES=INDEX",
                   help="which channel is which series, e.g. --channel t2=0 --channel dce=1 (overrides the "
                        "channel names; channels not named are not imported)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing cohort.csv in --out")


def run(args):
    channels = importers.parse_channel_options(args.channel)
    if args.kind == "nnunet":
        result = importers.from_nnunet(args.dataset, args.labels, channels=channels or None)
    else:
        result = importers.from_monai(args.datalist, sections=args.sections or ("training",), base_dir=args.base_dir,
                                      labels_csv=args.labels, image_sequence=args.image_sequence,
                                      channels=channels or None)
    for note in result.notes:
        print("note: {}".format(note))
    if result.problems:
        print_problems(result.problems, "{} problem(s); nothing written:")
        return 1
    csv_path = importers.write_cohort_csv(args.out, result.rows, overwrite=args.overwrite)
    positives = sum(1 for r in result.rows if r["lvi"] == 1)
    print("wrote {} ({} cases, {} LVI+); check it with `lvi validate-cohort {}`".format(
        csv_path, len(result.rows), positives, args.out))
    return 0
