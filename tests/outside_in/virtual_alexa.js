// Drives the skill's HTTP endpoint with virtual-alexa, as a device would.
// usage: node virtual_alexa.js <skill url> <interaction model file> <skill id> <user id> <steps json> [locale] [mode]
// steps: [{"utter": "is my build done"} | {"launch": true}]; prints one JSON array of answers.
// mode "conversation" (default) keeps one session; "oneshot" opens a new session for every step and records
// an utterance virtual-alexa cannot match (it matches samples exactly) instead of stopping; "match" is oneshot
// that only records the intent virtual-alexa resolved (the skill URL need not answer).
const { VirtualAlexa } = require("virtual-alexa");

function device(url, model, skillId, userId, locale, seen) {
  const alexa = VirtualAlexa.Builder()
    .skillURL(url)
    .interactionModelFile(model)
    .applicationID(skillId)
    .locale(locale)
    .create();
  alexa.filter((request) => {
    request.context.System.user.userId = userId;
    if (request.session) request.session.user.userId = userId;
    seen.intent = request.request.intent ? request.request.intent.name : request.request.type;
    seen.slots = {};
    const slots = (request.request.intent && request.request.intent.slots) || {};
    for (const name of Object.keys(slots)) {
      if (slots[name].value !== undefined) seen.slots[name] = slots[name].value;
    }
  });
  return alexa;
}

async function main() {
  const [url, model, skillId, userId, stepsJson, locale = "en-US", mode = "conversation"] = process.argv.slice(2);
  const seen = {};
  const alexa = device(url, model, skillId, userId, locale, seen);
  const answers = [];
  for (const step of JSON.parse(stepsJson)) {
    if (mode !== "conversation") alexa.context().endSession();  // a new session for every step, as a one-shot ask
    seen.intent = null;
    seen.slots = {};
    let reply;
    try {
      reply = step.launch ? await alexa.launch() : await alexa.utter(step.utter);
    } catch (err) {
      if (mode === "conversation") throw err;
      answers.push({ step, intent: seen.intent, slots: seen.slots, speech: "", end: true,
                     error: String(err.message || err) });
      continue;
    }
    const response = reply.response || {};
    answers.push({
      step,
      intent: seen.intent,
      slots: seen.slots,
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
