/**
 * @module server/providers/cdevents-schemas
 * The vendored CDEvents v0.4.1 schemas (see README.md), imported statically so they are bundled
 * into the compiled executable (`npm run build:server`) rather than read from disk.
 */
import artifactdeleted from "./artifactdeleted.json";
import artifactdownloaded from "./artifactdownloaded.json";
import artifactpackaged from "./artifactpackaged.json";
import artifactpublished from "./artifactpublished.json";
import artifactsigned from "./artifactsigned.json";
import branchcreated from "./branchcreated.json";
import branchdeleted from "./branchdeleted.json";
import buildfinished from "./buildfinished.json";
import buildqueued from "./buildqueued.json";
import buildstarted from "./buildstarted.json";
import changeabandoned from "./changeabandoned.json";
import changecreated from "./changecreated.json";
import changemerged from "./changemerged.json";
import changereviewed from "./changereviewed.json";
import changeupdated from "./changeupdated.json";
import custom from "./custom.json";
import environmentcreated from "./environmentcreated.json";
import environmentdeleted from "./environmentdeleted.json";
import environmentmodified from "./environmentmodified.json";
import incidentdetected from "./incidentdetected.json";
import incidentreported from "./incidentreported.json";
import incidentresolved from "./incidentresolved.json";
import links_embeddedlinkend from "./links/embeddedlinkend.json";
import links_embeddedlinkpath from "./links/embeddedlinkpath.json";
import links_embeddedlinkrelation from "./links/embeddedlinkrelation.json";
import links_embeddedlinksarray from "./links/embeddedlinksarray.json";
import links_linkend from "./links/linkend.json";
import links_linkpath from "./links/linkpath.json";
import links_linkrelation from "./links/linkrelation.json";
import links_linkstart from "./links/linkstart.json";
import pipelinerunfinished from "./pipelinerunfinished.json";
import pipelinerunqueued from "./pipelinerunqueued.json";
import pipelinerunstarted from "./pipelinerunstarted.json";
import repositorycreated from "./repositorycreated.json";
import repositorydeleted from "./repositorydeleted.json";
import repositorymodified from "./repositorymodified.json";
import servicedeployed from "./servicedeployed.json";
import servicepublished from "./servicepublished.json";
import serviceremoved from "./serviceremoved.json";
import servicerolledback from "./servicerolledback.json";
import serviceupgraded from "./serviceupgraded.json";
import taskrunfinished from "./taskrunfinished.json";
import taskrunstarted from "./taskrunstarted.json";
import testcaserunfinished from "./testcaserunfinished.json";
import testcaserunqueued from "./testcaserunqueued.json";
import testcaserunskipped from "./testcaserunskipped.json";
import testcaserunstarted from "./testcaserunstarted.json";
import testoutputpublished from "./testoutputpublished.json";
import testsuiterunfinished from "./testsuiterunfinished.json";
import testsuiterunqueued from "./testsuiterunqueued.json";
import testsuiterunstarted from "./testsuiterunstarted.json";
import ticketclosed from "./ticketclosed.json";
import ticketcreated from "./ticketcreated.json";
import ticketupdated from "./ticketupdated.json";

/** Every schema; each carries its `$id`. */
export const CDEVENTS_SCHEMAS: readonly object[] = [
  artifactdeleted,
  artifactdownloaded,
  artifactpackaged,
  artifactpublished,
  artifactsigned,
  branchcreated,
  branchdeleted,
  buildfinished,
  buildqueued,
  buildstarted,
  changeabandoned,
  changecreated,
  changemerged,
  changereviewed,
  changeupdated,
  custom,
  environmentcreated,
  environmentdeleted,
  environmentmodified,
  incidentdetected,
  incidentreported,
  incidentresolved,
  links_embeddedlinkend,
  links_embeddedlinkpath,
  links_embeddedlinkrelation,
  links_embeddedlinksarray,
  links_linkend,
  links_linkpath,
  links_linkrelation,
  links_linkstart,
  pipelinerunfinished,
  pipelinerunqueued,
  pipelinerunstarted,
  repositorycreated,
  repositorydeleted,
  repositorymodified,
  servicedeployed,
  servicepublished,
  serviceremoved,
  servicerolledback,
  serviceupgraded,
  taskrunfinished,
  taskrunstarted,
  testcaserunfinished,
  testcaserunqueued,
  testcaserunskipped,
  testcaserunstarted,
  testoutputpublished,
  testsuiterunfinished,
  testsuiterunqueued,
  testsuiterunstarted,
  ticketclosed,
  ticketcreated,
  ticketupdated,
];
