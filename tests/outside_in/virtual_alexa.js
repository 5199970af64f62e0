// Drives the skill's HTTP endpoint with virtual-alexa, as a device would.
// usage: node virtual_alexa.js <skill url> <interaction model file> <skill id> <user id> <steps json>
// steps: [{"utter": "is my build done"} | {"launch": true}]; prints one JSON array of answers.
const { VirtualAlexa } = require("virtual-alexa");

async function main() {
  const [url, model, skillId, userId, stepsJson] = process.argv.slice(2);
  const alexa = VirtualAlexa.Builder()
    .skillURL(url)
    .interactionModelFile(model)
    .applicationID(skillId)
    .locale("en-US")
    .create();
  alexa.filter((request) => {
    request.context.System.user.userId = userId;
    if (request.session) request.session.user.userId = userId;
  });
  const answers = [];
  for (const step of JSON.parse(stepsJson)) {
    const reply = step.launch ? await alexa.launch() : await alexa.utter(step.utter);
    const response = reply.response || {};
    answers.push({
      step,
      intent: alexa.context().session() ? "session-open" : "session-closed",
      speech: (response.outputSpeech && (response.outputSpeech.ssml || response.outputSpeech.text)) || "",
      end: response.shouldEndSession !== false,
    });
  }
  console.log(JSON.stringify(answers));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
